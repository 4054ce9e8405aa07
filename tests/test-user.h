/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A system user a test makes for itself (useradd --system, with a group of
 * its name) and removes when it goes out of scope: what a jail entered as
 * root should become ($MAJORDOME_JAIL_USER), without depending on the
 * host's majordome-vmm. Root only; ok() false where it could not be made. */

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace test_user {

class TestUser {
public:
        TestUser() : name_("mjd-test-" + std::to_string(getpid())) {
                if (geteuid() != 0 || access("/usr/sbin/useradd", X_OK) != 0)
                        return;
                std::string cmd = "/usr/sbin/useradd --system --no-create-home --user-group "
                                  "--shell /usr/sbin/nologin " + name_ + " >/dev/null 2>&1";
                if (system(cmd.c_str()) != 0)
                        return;
                made_ = true;
                if (struct passwd *pw = getpwnam(name_.c_str())) {
                        uid_ = pw->pw_uid;
                        gid_ = pw->pw_gid;
                }
        }
        ~TestUser() {
                if (!made_)
                        return;
                /* userdel removes the group of the same name too. */
                std::string cmd = "/usr/sbin/userdel " + name_ + " >/dev/null 2>&1";
                (void) !system(cmd.c_str());
        }
        TestUser(const TestUser &) = delete;
        TestUser &operator=(const TestUser &) = delete;

        bool ok() const { return made_ && uid_ != 0; }
        const std::string &name() const { return name_; }
        uid_t uid() const { return uid_; }
        gid_t gid() const { return gid_; }
        /* The environment entry that names it to the VMM and its device processes. */
        std::string env() const { return "MAJORDOME_JAIL_USER=" + name_; }

private:
        std::string name_;
        bool made_ = false;
        uid_t uid_ = 0;
        gid_t gid_ = 0;
};

/* Who root becomes without $MAJORDOME_JAIL_USER: majordome-vmm where the
 * host has it, else nobody. */
inline uid_t default_jail_uid() {
        struct passwd *pw = getpwnam("majordome-vmm");
        return pw ? pw->pw_uid : 65534;
}

} // namespace test_user
