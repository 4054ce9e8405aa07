#!/usr/bin/env python3
"""The Portage ebuild against the tree (docs/packaging.md), TAP.

1. It parses: `bash -n`.
2. It sources cleanly with the eclass functions stubbed; EAPI is 8.
3. Every meson option it passes (meson_use, meson_feature, -Dname=) is in
   meson_options.txt or is a meson built-in.
4. Every feature option of meson_options.txt is passed with meson_feature
   (no automagic dependency: a library found by chance is never linked).
5. Every dependency() and find_library() of every meson.build maps, through
   the table below, to an atom in the ebuild's DEPEND, RDEPEND or BDEPEND
   (the libc and meson's own need none), under the right USE flag: a
   look-up with `required : get_option('X')` (or a variable set to it) is
   X's flag's, one under tests/ or bench/ the tests option's. An atom that
   some look-up needs always must occur outside every USE group; one that
   only gated look-ups need must occur only inside their flags' `flag? ( )`
   groups (the package must not pull it for nothing), and, unless a test
   look-up is among them, somewhere outside test? too. A name missing
   from the table fails: extend the table with its Gentoo atom.

Usage: test-ebuild.py SOURCE_ROOT
"""
import pathlib
import re
import subprocess
import sys

# pkg-config (or library) name -> the Gentoo package providing it; None
# for what the libc, the compiler or meson itself provides.
ATOMS = {
    "libsystemd": "sys-apps/systemd",
    "systemd": "sys-apps/systemd",
    "dbus-1": "sys-apps/dbus",
    "polkit-gobject-1": "sys-auth/polkit",
    "glib-2.0": "dev-libs/glib",
    "gio-2.0": "dev-libs/glib",
    "gio-unix-2.0": "dev-libs/glib",
    "libseccomp": "sys-libs/libseccomp",
    "zlib": "sys-libs/zlib",
    "liblzma": "app-arch/xz-utils",
    "libzstd": "app-arch/zstd",
    "liblz4": "app-arch/lz4",
    "bz2": "app-arch/bzip2",
    "gtest": "dev-cpp/gtest",
    "wayland-client": "dev-libs/wayland",
    "wayland-protocols": "dev-libs/wayland-protocols",
    "wayland-scanner": "dev-util/wayland-scanner",
    "libpng": "media-libs/libpng",
    "virglrenderer": "media-libs/virglrenderer",
    "libavcodec": "media-video/ffmpeg",
    "libavutil": "media-video/ffmpeg",
    "libswscale": "media-video/ffmpeg",
    # Only its completionsdir is looked up; Gentoo's bash-completion-r1
    # eclass names the directory instead (get_bashcompdir).
    "bash-completion": None,
    "threads": None,
    "m": None,
    "dl": None,
}

# Options every meson project has (`meson configure` lists them).
MESON_BUILTINS = {
    "prefix", "bindir", "sbindir", "libdir", "libexecdir", "datadir",
    "sysconfdir", "localstatedir", "mandir", "includedir", "infodir",
    "localedir", "sharedstatedir", "buildtype", "debug", "optimization",
    "werror", "warning_level", "strip", "b_lto", "b_pie", "b_ndebug",
    "b_sanitize", "b_coverage", "default_library", "wrap_mode",
    "auto_features", "backend", "unity", "layout", "install_umask",
}

# Stubs for what the inherited eclasses would define, so the ebuild's
# global scope runs as Portage would run it. Each meson helper prints the
# option it passes, as the real ones do.
STUBS = r"""
inherit() { PYTHON_DEPS="dev-lang/python:3"; }
meson_use() { echo "-D${2:-$1}=USE:$1"; }
meson_feature() { echo "-D${2:-$1}=FEATURE:$1"; }
usex() { echo "${2:-yes}"; }
use() { return 0; }
systemd_get_systemunitdir() { echo /usr/lib/systemd/system; }
get_bashcompdir() { echo /usr/share/bash-completion/completions; }
systemd_get_userunitdir() { echo /usr/lib/systemd/user; }
meson_src_configure() { printf '%s\n' "${emesonargs[@]}" "$@"; }
meson_src_test() { :; }
tmpfiles_process() { :; }
elog() { :; }
einfo() { :; }
ewarn() { :; }
die() { echo "die: $*" >&2; exit 1; }
"""

DUMP = r"""
set -e
source "$1"
printf 'EAPI=%s\0IUSE=%s\0KEYWORDS=%s\0DEPEND=%s\0RDEPEND=%s\0BDEPEND=%s\0' \
    "$EAPI" "$IUSE" "$KEYWORDS" "$DEPEND" "$RDEPEND" "$BDEPEND"
printf 'CONFIGURE=%s\0' "$(src_configure | tr '\n' ' ')"
"""


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = False

    def check(self, ok, name, detail=""):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}")
        if not ok:
            self.failed = True
            for line in detail.splitlines():
                print(f"# {line}")


def meson_lookups(root):
    """(name, file, option) for each dependency('NAME') and
    find_library('NAME'); option: the meson option that gates it, or None."""
    found = []
    call = re.compile(r"""\b(?:dependency|find_library)\(\s*'([^']+)'""")
    for path in sorted(root.rglob("meson.build")):
        rel = path.relative_to(root)
        if rel.parts[0].startswith("build") or rel.parts[0] == "subprojects":
            continue
        text = path.read_text()
        # NAME = get_option('X')... : a variable that stands for feature X.
        aliases = dict(re.findall(r"^(\w+)\s*=\s*get_option\('([^']+)'\)", text, re.M))
        for m in call.finditer(text):
            args = text[m.end():text.find(")\n", m.end()) + 1]
            req = re.search(r"required\s*:\s*(?:get_option\('([^']+)'\)|(\w+))", args)
            option = None
            if req:
                option = req.group(1) or aliases.get(req.group(2))
            if option is None and rel.parts[0] in ("tests", "bench"):
                option = "tests"
            found.append((m.group(1), str(rel), option))
    return found


def atom_conditions(depstring):
    """{atom: [set of USE flags around one occurrence, ...]} of a Portage
    dependency string (flag? ( ... ) groups, nested; || ( ) is no flag)."""
    out = {}
    stack, pending = [], None
    for tok in depstring.split():
        if tok.endswith("?") and not tok.startswith("!"):
            pending = tok[:-1]
        elif tok == "(":
            stack.append(pending)
            pending = None
        elif tok == ")":
            stack.pop()
        elif tok == "||":
            pending = None
        else:
            m = re.match(r"[<>=~!]*([a-z0-9-]+/[A-Za-z0-9_+-]+?)(?=[:\[]|-[0-9]|$)", tok)
            if m:
                out.setdefault(m.group(1), []).append({f for f in stack if f})
    return out


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    ebuilds = sorted((root / "ebuild" / "app-emulation" / "majordome").glob("*.ebuild"))
    tap = Tap()
    print("1..8")
    if len(ebuilds) != 1:
        tap.check(False, "one majordome ebuild", f"found {ebuilds}")
        return 1
    ebuild = ebuilds[0]

    r = subprocess.run(["bash", "-n", str(ebuild)], capture_output=True, text=True)
    tap.check(r.returncode == 0, f"bash -n {ebuild.name}", r.stderr)

    r = subprocess.run(["bash", "-c", STUBS + DUMP, "test-ebuild", str(ebuild)],
                       capture_output=True, text=True)
    tap.check(r.returncode == 0 and not r.stderr, "it sources with stub eclasses",
              r.stderr or f"exit status {r.returncode}")
    vars_ = dict(item.split("=", 1) for item in r.stdout.split("\0") if "=" in item)
    for key in ("EAPI", "IUSE", "KEYWORDS", "DEPEND", "RDEPEND", "BDEPEND"):
        print(f"# {key}: {' '.join(vars_.get(key, '').split())}")

    tap.check(vars_.get("EAPI") == "8", "EAPI is 8", f"EAPI={vars_.get('EAPI')!r}")

    # A live ebuild has no KEYWORDS; a release ebuild has some.
    live = ebuild.name.endswith("-9999.ebuild")
    keywords = vars_.get("KEYWORDS", "").strip()
    tap.check(bool(keywords) != live,
              "no KEYWORDS for a live ebuild, some for a release",
              f"{ebuild.name}: KEYWORDS={keywords!r}")

    options_text = (root / "meson_options.txt").read_text()
    project_options = set(re.findall(r"option\(\s*'([^']+)'", options_text))
    passed = re.findall(r"-D([A-Za-z0-9_]+)=", vars_.get("CONFIGURE", ""))
    unknown = [o for o in passed if o not in project_options and o not in MESON_BUILTINS]
    tap.check(bool(passed) and not unknown,
              f"the meson options it passes exist ({', '.join(passed)})",
              f"not in meson_options.txt nor a meson built-in: {', '.join(unknown)}"
              if passed else "src_configure passes no option")

    # Which USE flag stands for which option: the ebuild's own calls.
    flags = dict(re.findall(r"-D([A-Za-z0-9_]+)=(?:USE|FEATURE):(\S+)", vars_.get("CONFIGURE", "")))
    passed_features = set(re.findall(r"-D([A-Za-z0-9_]+)=FEATURE:", vars_.get("CONFIGURE", "")))
    features = set(re.findall(r"option\(\s*'([^']+)'\s*,\s*type\s*:\s*'feature'", options_text))
    tap.check(features == passed_features,
              f"every meson feature is passed with meson_feature ({', '.join(sorted(features))})",
              f"features not passed: {', '.join(sorted(features - passed_features)) or '-'}; "
              f"meson_feature of no feature: {', '.join(sorted(passed_features - features)) or '-'}")

    occurrences = atom_conditions(" ".join(vars_.get(k, "") for k in ("DEPEND", "RDEPEND", "BDEPEND")))
    problems = []
    needed = {}     # atom -> [(name, where, option)]
    for name, where, option in meson_lookups(root):
        atom = ATOMS.get(name, "?")
        if atom == "?":
            problems.append(f"{where}: dependency '{name}' is not in test-ebuild.py's "
                            "ATOMS table: add it with its Gentoo atom")
        elif atom is None:
            pass
        elif atom not in occurrences:
            problems.append(f"{where}: '{name}' needs {atom} in DEPEND, RDEPEND or BDEPEND")
        elif option is not None and option not in flags:
            problems.append(f"{where}: '{name}' is gated by the meson option {option}, "
                            "which the ebuild does not pass")
        else:
            needed.setdefault(atom, []).append((name, where, option))
    for atom, lookups in sorted(needed.items()):
        found = "; ".join(" ".join(sorted(c)) or "no flag" for c in occurrences[atom])
        always = [f"{w}: '{n}'" for n, w, o in lookups if o is None]
        if always:
            if not any(not conds for conds in occurrences[atom]):
                problems.append(f"{always[0]} is always looked up: {atom} must be outside every "
                                f"USE group (found under: {found})")
            continue
        wanted = {flags[o] for n, w, o in lookups}
        if not all(conds & wanted for conds in occurrences[atom]):
            problems.append(f"{lookups[0][1]}: '{lookups[0][0]}' is looked up only under "
                            f"{', '.join(sorted(wanted))}: {atom} must be inside that flag's group "
                            f"everywhere (found under: {found})")
        # What the programs link must not hide under test? alone.
        test_flag = flags.get("tests")
        if test_flag not in wanted and all(test_flag in conds for conds in occurrences[atom]):
            problems.append(f"{lookups[0][1]}: '{lookups[0][0]}' is the programs', not only the tests': "
                            f"{atom} must be outside test? (found under: {found})")
    tap.check(not problems, "every meson dependency is in the ebuild's dependencies, under its USE flag",
              "\n".join(problems))

    # The jail user: sysusers.d's elsewhere, an acct-user package on Gentoo,
    # the same name, which the ebuild pulls in at run time.
    sysusers = (root / "daemon" / "majordome.sysusers").read_text()
    users = [line.split()[1] for line in sysusers.splitlines() if line.startswith("u ")]
    problems = []
    for user in users:
        for kind in ("acct-user", "acct-group"):
            acct = root / "ebuild" / kind / user / f"{user}-0.ebuild"
            if not acct.exists():
                problems.append(f"no {acct.relative_to(root)}")
                continue
            r = subprocess.run(["bash", "-c", 'inherit() { :; }; acct-user_add_deps() { :; }; source "$1"; '
                                'printf "%s" "$EAPI"', "acct", str(acct)], capture_output=True, text=True)
            if r.returncode != 0 or r.stderr or r.stdout != "8":
                problems.append(f"{acct.relative_to(root)}: sources with EAPI {r.stdout!r}: {r.stderr}")
        if f"acct-user/{user}" not in vars_.get("RDEPEND", "").split():
            problems.append(f"RDEPEND lacks acct-user/{user}")
    tap.check(bool(users) and not problems, "the sysusers.d users (%s) are acct-user/acct-group packages the "
              "ebuild depends on" % ", ".join(users), "\n".join(problems))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
