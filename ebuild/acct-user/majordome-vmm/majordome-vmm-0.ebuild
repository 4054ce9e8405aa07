# Copyright 2026 Majordome authors
# Distributed under the terms of the BSD-3-Clause license

EAPI=8

inherit acct-user

DESCRIPTION="User the jailed Majordome VMMs and their device processes drop to"
ACCT_USER_ID=-1
ACCT_USER_GROUPS=( majordome-vmm )

acct-user_add_deps
