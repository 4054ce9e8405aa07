#!/bin/bash
# TAP: vmc's bash and zsh completions (completions/) against the built vmc
# and a real majordomed --user on a private session bus with one VM: the
# commands and each command's options as vmc's --help gives them, the values
# of --on-panic, files and directories where a path goes, VM names from the
# daemon (on the bus the command line names). zsh's completion functions
# (compadd, _files, _directories) are stood in for by ones that print.
# Env: VMC, MAJORDOMED, MAJORDOME_VMM, MAJORDOME_GUEST_DIR, MAJORDOME_SOURCE_DIR.
set -u
src=$MAJORDOME_SOURCE_DIR/completions
n=0 failed=0
check() { # NAME WANT GOT
        n=$((n + 1))
        if [[ "$3" == "$2" ]]; then
                echo "ok $n - $1"
        else
                echo "not ok $n - $1: want '$2', got '$3'"
                failed=1
        fi
}

tmp=$(mktemp -d)
cleanup() {
        # The VMM outlives its daemon by design: end the VM first.
        vmc --user kill web1 >/dev/null 2>&1
        kill $daemon $bus_pid 2>/dev/null
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
dbus-daemon --session --fork --print-address=1 --print-pid=1 >"$tmp/bus" || exit 1
export DBUS_SESSION_BUS_ADDRESS=$(sed -n 1p "$tmp/bus")
bus_pid=$(sed -n 2p "$tmp/bus")
"$MAJORDOMED" --user --runtime-dir "$tmp/rt" --vmm "$MAJORDOME_VMM" >"$tmp/log" 2>&1 &
daemon=$!
mkdir -p "$tmp/bin"
ln -s "$VMC" "$tmp/bin/vmc"
export PATH=$tmp/bin:$PATH
for i in $(seq 100); do vmc --user list >/dev/null 2>&1 && break; sleep 0.05; done
have_vm=0
[ -w /dev/kvm ] && vmc --user start web1 --kernel "$MAJORDOME_GUEST_DIR/spin.elf" --mem 64M >/dev/null && have_vm=1
mkdir -p "$tmp/files/dir-a"
touch "$tmp/files/kernel-a"

# bash
source "$src/vmc.bash"
b() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _vmc; echo "${COMPREPLY[*]}"; }
check "bash: commands" "start stop" "$(b vmc st)"
check "bash: every command" "$(vmc --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' | xargs)" "$(b vmc '')"
check "bash: global options" "--user" "$(b vmc --u)"
check "bash: a command's options" "--balloon" "$(b vmc start x --ba)"
check "bash: stop's options" "--force --help --timeout" "$(b vmc stop web1 --)"
check "bash: --on-panic values" "pause" "$(b vmc start x --on-panic p)"
check "bash: a file after --kernel" "$tmp/files/kernel-a" "$(b vmc start x --kernel "$tmp/files/ker")"
check "bash: a directory to share" "$tmp/files/dir-a" "$(b vmc --user share web1 "$tmp/files/d")"
check "bash: no name to complete for start" "" "$(b vmc --user start w)"
if [ $have_vm = 1 ]; then
        check "bash: VM names from the daemon" "web1" "$(b vmc --user stop w)"
        check "bash: VM names after an option taking an argument" "web1" "$(b vmc --user logs --raw w)"
        check "bash: VM names on the bus named (--address)" "web1" "$(b vmc --address "$DBUS_SESSION_BUS_ADDRESS" info w)"
else
        for w in "VM names from the daemon" "after an option" "on the bus named"; do
                n=$((n + 1)); echo "ok $n - bash: $w # SKIP no VM: /dev/kvm is not writable"
        done
fi

# zsh
if command -v zsh >/dev/null; then
        z() {
                zsh -f -c 'compadd() { [[ $1 == -- ]] && shift; print -r -- "${(j: :)@}"; }
                           _files() { print -r -- "<files>"; }
                           _directories() { print -r -- "<dirs>"; }
                           words=("$@"); CURRENT=$#words; source "$0"' "$src/_vmc" "$@"
        }
        check "zsh: commands" "$(vmc --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' | xargs)" "$(z vmc st)"
        check "zsh: a command's options" "$(vmc stop --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | xargs)" \
                "$(z vmc stop web1 --)"
        check "zsh: --on-panic values" "stop pause" "$(z vmc start x --on-panic p)"
        check "zsh: a file after --kernel" "<files>" "$(z vmc start x --kernel /k)"
        check "zsh: a directory to share" "<dirs>" "$(z vmc --user share web1 /x)"
        if [ $have_vm = 1 ]; then
                check "zsh: VM names from the daemon" "web1" "$(z vmc --user stop w)"
        else
                n=$((n + 1)); echo "ok $n - zsh: VM names # SKIP no VM: /dev/kvm is not writable"
        fi
else
        for i in 1 2 3 4 5 6; do n=$((n + 1)); echo "ok $n - zsh # SKIP zsh is not installed"; done
fi
echo "1..$n"
exit $failed
