# Copyright 2026 Majordome authors
# Distributed under the terms of the BSD-3-Clause license

# A live ebuild: it builds the newest commit of the repository below, so by
# Gentoo convention it has no KEYWORDS (users accept it explicitly in
# package.accept_keywords with "**"). A release gets majordome-X.Y.Z.ebuild
# with SRC_URI and KEYWORDS="~amd64". tests/packaging/test-ebuild.py checks
# this file against the tree: docs/packaging.md.

EAPI=8

PYTHON_COMPAT=( python3_{11..13} )

# Placeholder: the project has no public repository yet. Point it at the
# real one (or set EGIT_OVERRIDE_REPO_MAJORDOME) before use.
EGIT_REPO_URI="https://example.invalid/majordome.git"

inherit bash-completion-r1 git-r3 meson python-any-r1 systemd tmpfiles

DESCRIPTION="KVM virtual machine manager: a D-Bus daemon, a sandboxed VMM and a client"
HOMEPAGE="https://example.invalid/majordome"

LICENSE="BSD"
SLOT="0"
KEYWORDS=""
# One flag per meson feature (meson_options.txt). wayland is the GPU's
# windows and cross-domain context, so it needs gpu (a gpu without it is
# headless). The seccomp sandbox is not optional (majordome-vmm jails
# itself with libseccomp), so there is no seccomp flag.
IUSE="+gpu test +video +wayland"
REQUIRED_USE="wayland? ( gpu )"
RESTRICT="!test? ( test )"

# majordomed: sd-bus and sd-event. vmc: GLib and GIO. majordome-vmm and
# the device processes: libseccomp. majordome-gpu (gpu): virglrenderer
# (3D; it renders through Mesa's EGL, llvmpipe without a GPU) and, with
# wayland, wayland-client for its windows. majordome-video (video):
# libavcodec, libavutil and libswscale (FFmpeg). At run time the daemon
# needs a D-Bus system bus and asks polkit about callers.
COMMON_DEPEND="
	dev-libs/glib:2
	sys-apps/systemd:=
	sys-libs/libseccomp
	gpu? (
		media-libs/virglrenderer
		wayland? ( dev-libs/wayland )
	)
	video? ( media-video/ffmpeg:= )
"
# The kernel image codecs are linked into majordome-vmm statically
# (vmm/boot/meson.build), so they are needed at build time only, as static
# libraries.
DEPEND="
	${COMMON_DEPEND}
	app-arch/bzip2[static-libs]
	app-arch/lz4[static-libs]
	app-arch/xz-utils[static-libs]
	app-arch/zstd[static-libs]
	sys-libs/zlib[static-libs]
	test? (
		dev-cpp/gtest
		media-libs/libpng
		gpu? (
			x11-libs/libdrm
			wayland? (
				dev-libs/weston[X,headless]
				x11-base/xorg-server[xvfb]
			)
		)
		video? ( media-video/ffmpeg[vpx,x264,x265] )
	)
"
# Mesa: virglrenderer's EGL at run time (surfaceless, llvmpipe or a GPU).
# Gentoo's users come from acct-user packages, not sysusers.d: the jailed
# VMMs drop to majordome-vmm (nobody without it).
RDEPEND="
	${COMMON_DEPEND}
	acct-user/majordome-vmm
	sys-apps/dbus
	sys-auth/polkit
	gpu? ( media-libs/mesa )
"
# majordome-gpu's xdg-shell glue is generated at build time.
BDEPEND="
	${PYTHON_DEPS}
	virtual/pkgconfig
	gpu? (
		wayland? (
			dev-libs/wayland-protocols
			dev-util/wayland-scanner
		)
	)
"

src_configure() {
	local emesonargs=(
		$(meson_feature gpu)
		$(meson_feature video)
		$(meson_feature wayland)
		$(meson_use test tests)
		-Dsystemdsystemunitdir="$(systemd_get_systemunitdir)"
		-Dbashcompletiondir="$(get_bashcompdir)"
		-Dzshcompletiondir="${EPREFIX}/usr/share/zsh/site-functions"
	)
	meson_src_configure
}

src_test() {
	# The unit tests need no /dev/kvm, privileges or network; the daemon,
	# integration, faults and linux suites do and are left out, as is the
	# fuzz suite (clang, -Dfuzz=true). The packaging suite checks the
	# project's own layout (its manifest is for a merged /usr), not the
	# package's.
	meson_src_test --suite unit
}

pkg_postinst() {
	tmpfiles_process majordome.conf
	elog "Start the system daemon with: systemctl enable --now majordomed"
	elog "A user's own daemon is activated on the session bus by vmc --user."
	elog "Members of no special group may manage VMs: polkit asks for an"
	elog "administrator (org.majordome.manage-vms); add a polkit rule to allow a group."
}
