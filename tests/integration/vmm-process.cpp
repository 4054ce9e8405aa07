/* SPDX-License-Identifier: BSD-3-Clause */
#include "tests/integration/vmm-process.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <cstdio>
#include <dirent.h>
#include <sstream>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

#include "common/control.h"

std::string vmm_path() {
        const char *p = getenv("MAJORDOME_VMM");
        return p ? p : "majordome-vmm";
}

std::string guest_path(const std::string &name) {
        const char *d = getenv("MAJORDOME_GUEST_DIR");
        return std::string(d ? d : ".") + "/" + name + ".elf";
}

bool kvm_usable(std::string *why) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                *why = std::string("/dev/kvm: ") + strerror(errno);
                return false;
        }
        close(fd);
        return true;
}

TempDir::TempDir() {
        char tmpl[] = "/tmp/majordome-test.XXXXXX";
        if (!mkdtemp(tmpl))
                abort();
        path = tmpl;
}

TempDir::~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        if (system(cmd.c_str()) != 0) {
                /* Leave it: a test's temp dir is not worth failing over. */
        }
}

void write_file(const std::string &path, const std::string &data) {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(data.data(), (std::streamsize) data.size());
}

std::string read_file(const std::string &path) {
        std::ifstream f(path, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
}

Process::Process(std::vector<std::string> argv, std::vector<std::string> env) {
        std::string out = dir_.file("stdout"), err = dir_.file("stderr");

        pid_ = fork();
        if (pid_ < 0)
                abort();
        if (pid_ == 0) {
                int in = open("/dev/null", O_RDONLY);
                int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
                dup2(in, 0);
                dup2(o, 1);
                dup2(e, 2);
                setpgid(0, 0);
                for (auto &kv : env)
                        putenv(strdup(kv.c_str()));
                std::vector<char *> args;
                for (auto &a : argv)
                        args.push_back(const_cast<char *>(a.c_str()));
                args.push_back(nullptr);
                execvp(args[0], args.data());
                _exit(127);
        }
        pidfd_ = (int) syscall(SYS_pidfd_open, pid_, 0);
}

Process::~Process() {
        if (!reaped_) {
                ::kill(pid_, SIGKILL);
                wait(5000);
        }
        if (pidfd_ >= 0)
                close(pidfd_);
}

std::string Process::out() const {
        return read_file(dir_.file("stdout"));
}

std::string Process::err() const {
        return read_file(dir_.file("stderr"));
}

bool Process::wait_for_output(const std::string &needle, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);

        while (std::chrono::steady_clock::now() < deadline) {
                if (out().find(needle) != std::string::npos)
                        return true;
                if (reaped_)
                        return false;
                struct pollfd p = { pidfd_, POLLIN, 0 };
                if (poll(&p, 1, 10) > 0) {
                        /* Exited: one last look at what it printed. */
                        return out().find(needle) != std::string::npos;
                }
        }
        return false;
}

bool Process::exited(int timeout_ms) {
        struct pollfd p = { pidfd_, POLLIN, 0 };
        return reaped_ || poll(&p, 1, timeout_ms) > 0;
}

RunResult Process::wait(int timeout_ms) {
        if (reaped_)
                return result_;

        struct pollfd p = { pidfd_, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) == 0) {
                result_.timed_out = true;
                ::kill(-pid_, SIGKILL);
                ::kill(pid_, SIGKILL);
        }
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR)
                ;
        reaped_ = true;
        if (WIFEXITED(status))
                result_.exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                result_.signal = WTERMSIG(status);
        result_.out = out();
        result_.err = err();
        return result_;
}

void Process::kill(int sig) {
        if (!reaped_)
                ::kill(pid_, sig);
}

RunResult run_vmm(const std::vector<std::string> &args, int timeout_ms) {
        std::vector<std::string> argv = { vmm_path() };
        argv.insert(argv.end(), args.begin(), args.end());
        Process p(argv);
        return p.wait(timeout_ms);
}

unsigned count_guest_passes(const std::string &out) {
        unsigned passed = 0;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) {
                std::istringstream words(l);
                std::string tag, name, verdict;
                if ((words >> tag >> name >> verdict) && tag == "TEST") {
                        EXPECT_EQ(verdict, "PASS") << l;
                        passed += verdict == "PASS";
                }
        }
        return passed;
}

sockaddr_un unix_addr(const std::string &path) {
        sockaddr_un sa = {};
        sa.sun_family = AF_UNIX;
        strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
        return sa;
}

int unix_listen(const std::string &path) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa = unix_addr(path);
        if (fd < 0)
                return -1;
        if (bind(fd, (sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

int unix_connect(const std::string &path, int timeout_ms, const std::atomic<bool> *stop) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < deadline && !(stop && *stop)) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_un sa = unix_addr(path);
                if (fd >= 0 && connect(fd, (sockaddr *) &sa, sizeof(sa)) == 0)
                        return fd;
                if (fd >= 0)
                        close(fd);
                usleep(50 * 1000);
        }
        return -1;
}

std::string read_line(int fd, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        std::string s;
        while (s.empty() || s.back() != '\n') {
                int left = (int) std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now())
                                   .count();
                struct pollfd p = { fd, POLLIN, 0 };
                char c;
                if (left <= 0 || poll(&p, 1, left) != 1 || read(fd, &c, 1) != 1)
                        break;
                s += c;
        }
        return s;
}

bool write_all(int fd, const std::string &s) {
        return write(fd, s.data(), s.size()) == (ssize_t) s.size();
}

static uint64_t guest_ram_rss_of(pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
        uint64_t total = 0;
        bool in_ram = false;

        for (std::string l; std::getline(in, l);) {
                unsigned long start, end;
                char sp;
                /* A mapping header starts with its address range. */
                if (sscanf(l.c_str(), "%lx-%lx%c", &start, &end, &sp) == 3 && sp == ' ') {
                        in_ram = l.find("/memfd:guest-ram") != std::string::npos;
                        continue;
                }
                if (in_ram && l.compare(0, 4, "Rss:") == 0)
                        total += std::stoull(l.substr(4)) * 1024;
        }
        return total;
}

uint64_t guest_ram_rss(pid_t pid) {
        std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
        uint64_t total = guest_ram_rss_of(pid);

        for (pid_t c; children >> c;)
                total += guest_ram_rss(c);
        return total;
}

std::string proc_status(pid_t pid, const std::string &field) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");

        for (std::string l; std::getline(in, l);)
                if (l.compare(0, field.size() + 1, field + ":") == 0) {
                        size_t v = l.find_first_not_of(" \t", field.size() + 1);
                        return v == std::string::npos ? "" : l.substr(v);
                }
        return "";
}

pid_t jailed_vmm(pid_t supervisor, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);

        while (std::chrono::steady_clock::now() < deadline) {
                std::ifstream children("/proc/" + std::to_string(supervisor) + "/task/" +
                                       std::to_string(supervisor) + "/children");
                pid_t c;
                /* The main thread's filter comes last, after vm_start. */
                if (children >> c && proc_status(c, "Seccomp") == "2")
                        return c;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
}

std::map<int, std::string> proc_fd_links(pid_t pid) {
        std::map<int, std::string> links;
        std::string dir = "/proc/" + std::to_string(pid) + "/fd";
        DIR *d = opendir(dir.c_str());

        if (!d)
                return links;
        for (dirent *de; (de = readdir(d));) {
                char target[4096];
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                n = readlink((dir + "/" + de->d_name).c_str(), target, sizeof(target) - 1);
                if (n >= 0)
                        links[atoi(de->d_name)] = std::string(target, (size_t) n);
        }
        closedir(d);
        return links;
}

/* A subscribed control connection's next event of `type`; false on timeout. */
bool next_event(int fd, uint16_t type, std::vector<uint8_t> *payload, int timeout_ms) {
        for (;;) {
                pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, timeout_ms) != 1)
                        return false;
                ControlDatagram d;
                ControlHeader h;
                if (control_receive(fd, &d) < 0)
                        return false;
                control_datagram_close_fds(&d);
                if (control_header_decode(d.data, d.len, &h) < 0 || h.length > d.len - CONTROL_HEADER_SIZE)
                        return false;
                if (h.type == type) {
                        payload->assign(d.data + CONTROL_HEADER_SIZE, d.data + CONTROL_HEADER_SIZE + h.length);
                        return true;
                }
        }
}

int subscribe(const std::string &path) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un sa = unix_addr(path);
        for (int i = 0; i < 200; i++) {
                if (connect(fd, (sockaddr *) &sa, sizeof(sa)) == 0) {
                        ControlHeader h = { .magic = CONTROL_MAGIC, .version = CONTROL_VERSION,
                                            .type = CONTROL_TYPE_SUBSCRIBE, .id = 1 };
                        if (control_send(fd, &h, nullptr, nullptr, 0) == 0)
                                return fd;
                        break;
                }
                usleep(50 * 1000);
        }
        close(fd);
        return -1;
}
