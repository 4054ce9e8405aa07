/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Runs the real majordome-vmm binary for integration tests. */

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

struct RunResult {
        int exit_code = -1;     /* -1 when killed by a signal or timed out */
        int signal = 0;
        bool timed_out = false;
        std::string out, err;
};

/* Paths given by meson through the environment. */
std::string vmm_path();
std::string guest_path(const std::string &name);

/* Whether /dev/kvm can be used; *why says why not. */
bool kvm_usable(std::string *why);

#define SKIP_WITHOUT_KVM()                                              \
        do {                                                            \
                std::string why_;                                       \
                if (!kvm_usable(&why_))                                 \
                        GTEST_SKIP() << "needs /dev/kvm: " << why_;     \
        } while (0)

/* A directory removed with its contents when the object goes. */
struct TempDir {
        std::string path;
        TempDir();
        ~TempDir();
        std::string file(const std::string &name) const { return path + "/" + name; }
};

void write_file(const std::string &path, const std::string &data);
std::string read_file(const std::string &path);

/* A process whose stdout and stderr go to files, stdin from /dev/null. */
class Process {
public:
        explicit Process(std::vector<std::string> argv, std::vector<std::string> env = {});
        ~Process();
        Process(const Process &) = delete;
        Process &operator=(const Process &) = delete;

        pid_t pid() const { return pid_; }
        std::string out() const;
        std::string err() const;
        /* True once `needle` shows up in stdout, false on timeout or exit. */
        bool wait_for_output(const std::string &needle, int timeout_ms);
        /* True once the process has exited, false after timeout_ms. */
        bool exited(int timeout_ms);
        /* Waits for the exit and fills the result; kills on timeout. */
        RunResult wait(int timeout_ms);
        void kill(int sig);

private:
        pid_t pid_ = -1;
        int pidfd_ = -1;
        bool reaped_ = false;
        RunResult result_;
        TempDir dir_;
};

/* Counts a test guest's "TEST name PASS detail" lines; every "TEST name
 * FAIL" line is a failure of the calling test. */
unsigned count_guest_passes(const std::string &out);

/* Runs `majordome-vmm args...` to completion. */
RunResult run_vmm(const std::vector<std::string> &args, int timeout_ms);

/* An owned descriptor, closed when the object goes. */
struct Fd {
        int fd = -1;
        explicit Fd(int f = -1) : fd(f) {}
        ~Fd() {
                if (fd >= 0)
                        close(fd);
        }
        Fd(const Fd &) = delete;
        Fd &operator=(const Fd &) = delete;
};

/* Unix stream sockets for the console and vsock tests. */
sockaddr_un unix_addr(const std::string &path);
int unix_listen(const std::string &path);
/* Connects, retrying until the path exists, `stop` is set or the time is up. */
int unix_connect(const std::string &path, int timeout_ms, const std::atomic<bool> *stop = nullptr);
/* One line with its newline; what came so far on timeout or EOF. */
std::string read_line(int fd, int timeout_ms);
bool write_all(int fd, const std::string &s);

/* A control connection to the VMM at path, subscribed to its events
 * (retrying the connect for 10 s); -1 on failure. */
int subscribe(const std::string &path);
/* That connection's next event of `type` (others skipped); false on
 * timeout or a broken message. */
bool next_event(int fd, uint16_t type, std::vector<uint8_t> *payload, int timeout_ms);

/* Resident bytes of the guest-RAM memfd ("/memfd:guest-ram") in the VMM
 * started as pid and its children (the jailed VMM runs the VM in a child). */
uint64_t guest_ram_rss(pid_t pid);

/* A field of /proc/PID/status ("CapEff") without its leading blanks; ""
 * when the process or the field is not there. */
std::string proc_status(pid_t pid, const std::string &field);

/* The jailed VMM under the supervisor `supervisor` (its one child), once
 * its set-up is over (its main thread runs under its seccomp filter);
 * -1 after timeout_ms. */
pid_t jailed_vmm(pid_t supervisor, int timeout_ms);

/* Each open descriptor of pid and what /proc/PID/fd/N links to. */
std::map<int, std::string> proc_fd_links(pid_t pid);
