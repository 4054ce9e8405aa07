/* SPDX-License-Identifier: BSD-3-Clause */
/* Static helper for tests/linux/check-vsock.sh (gcc -static, no libc
 * beyond the syscalls): one AF_VSOCK stream echo, either side.
 *   vsock-echo connect PORT LINE   connect to the host (CID 2) port PORT,
 *                                  send LINE and a newline, exit 0 when the
 *                                  same line comes back
 *   vsock-echo listen PORT         accept one connection on PORT, read a
 *                                  line, send it back, wait for EOF
 * Gives up after 90 s (alarm). Prints what it saw on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int read_line(int fd, char *buf, size_t max)
{
        size_t n = 0;
        while (n + 1 < max) {
                ssize_t k = read(fd, buf + n, 1);
                if (k <= 0)
                        break;
                if (buf[n++] == '\n')
                        break;
        }
        buf[n] = 0;
        return (int) n;
}

int main(int argc, char **argv)
{
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK };
        char line[256], want[256];
        int fd;

        alarm(90);
        if (argc < 3)
                return 2;
        sa.svm_port = (unsigned) strtoul(argv[2], NULL, 10);
        fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (fd < 0) {
                perror("socket(AF_VSOCK)");
                return 1;
        }
        if (strcmp(argv[1], "connect") == 0 && argc == 4) {
                sa.svm_cid = VMADDR_CID_HOST;
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        perror("connect");
                        return 1;
                }
                snprintf(want, sizeof(want), "%s\n", argv[3]);
                if (write(fd, want, strlen(want)) != (ssize_t) strlen(want))
                        return 1;
                read_line(fd, line, sizeof(line));
                fprintf(stderr, "got '%s'\n", line);
                return strcmp(line, want) == 0 ? 0 : 1;
        }
        if (strcmp(argv[1], "listen") == 0) {
                int c;
                sa.svm_cid = VMADDR_CID_ANY;
                if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
                        perror("bind/listen");
                        return 1;
                }
                c = accept(fd, NULL, NULL);
                if (c < 0) {
                        perror("accept");
                        return 1;
                }
                int n = read_line(c, line, sizeof(line));
                fprintf(stderr, "echoing '%s'\n", line);
                if (n <= 0 || write(c, line, (size_t) n) != n)
                        return 1;
                while (read(c, line, sizeof(line)) > 0)
                        ;
                close(c);
                return 0;
        }
        return 2;
}
