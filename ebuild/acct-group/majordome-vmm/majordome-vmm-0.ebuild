# Copyright 2026 Majordome authors
# Distributed under the terms of the BSD-3-Clause license

EAPI=8

inherit acct-group

DESCRIPTION="Group of the jailed Majordome VMMs and their device processes"
ACCT_GROUP_ID=-1
