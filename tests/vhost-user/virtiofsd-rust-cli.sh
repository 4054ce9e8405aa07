#!/bin/sh
# Stands in for the stand-alone (Rust) virtiofsd, which Debian 12 does not
# ship: takes exactly the command line majordome-vmm gives that one, checks
# that --shared-dir names the share the test made (its MAJORDOME-SHARE file,
# so never "/" or another directory), and serves it with QEMU's virtiofsd.
# Anything else is a usage error (exit 2), as the real one's parser makes it.
fd= dir= sandbox= cache= log=
for a in "$@"; do
        case $a in
        --fd=*) fd=${a#--fd=} ;;
        --shared-dir=*) dir=${a#--shared-dir=} ;;
        --sandbox=*) sandbox=${a#--sandbox=} ;;
        --cache=auto|--cache=always) cache=${a#--cache=} ;;
        --cache=never) cache=none ;;
        --log-level=error) log=err ;;
        *) echo "virtiofsd-rust-cli: unexpected argument '$a'" >&2; exit 2 ;;
        esac
done
if [ -z "$fd" ] || [ -z "$dir" ] || [ "$sandbox" != chroot ] || [ -z "$cache" ] || [ -z "$log" ]; then
        echo "virtiofsd-rust-cli: incomplete command line: $*" >&2
        exit 2
fi
if [ ! -f "$dir/MAJORDOME-SHARE" ]; then
        echo "virtiofsd-rust-cli: --shared-dir=$dir is not the test's share" >&2
        exit 3
fi
exec /usr/lib/qemu/virtiofsd --fd="$fd" -o source="$dir" -o sandbox=chroot -o cache="$cache" -o log_level="$log"
