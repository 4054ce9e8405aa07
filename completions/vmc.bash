# bash completion for vmc(1). Commands and options come from vmc's own
# --help, so they stay what the installed vmc takes; VM names come from the
# daemon (`vmc list`, on the bus the command line names).

_vmc_help() {
        # $1: the command, or empty for the overview
        "$_vmc_bin" ${1:+"$1"} --help 2>/dev/null
}

# Whether option $1 takes an argument: "--opt WORD" in $help, WORD in capitals.
_vmc_takes_arg() {
        printf '%s\n' "$help" | grep -qE -- "(^|[ [])$1[ =][A-Z]"
}

_vmc() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
        local _vmc_bin=${COMP_WORDS[0]} cmd= i w help
        local -a bus=()
        local -i pos=0

        help=$(_vmc_help)
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                if [[ -z $cmd ]]; then
                        case $w in
                        --system|--user) bus+=("$w") ;;
                        --address) bus+=(--address "${COMP_WORDS[i+1]}"); ((i++)) ;;
                        --address=*) bus+=("$w") ;;
                        -*) ;;
                        *) cmd=$w; help=$(_vmc_help "$cmd") ;;
                        esac
                elif [[ $w == -* ]]; then
                        [[ $w != *=* ]] && _vmc_takes_arg "$w" && ((i++))
                else
                        ((pos++))
                fi
        done

        if [[ $prev == -* && $prev != *=* ]] && _vmc_takes_arg "$prev"; then
                case $prev in
                --kernel|--initrd|--serial-log|--disk|--wayland-socket) COMPREPLY=($(compgen -f -- "$cur")) ;;
                --share) COMPREPLY=($(compgen -d -- "$cur")) ;;
                --on-panic) COMPREPLY=($(compgen -W "stop pause" -- "$cur")) ;;
                --cache) COMPREPLY=($(compgen -W "auto always never" -- "$cur")) ;;
                *) COMPREPLY=() ;;
                esac
                return
        fi
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)" -- "$cur"))
                return
        fi
        if [[ -z $cmd ]]; then
                COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p')" -- "$cur"))
                return
        fi
        case $cmd,$pos in
        start,*|list,*) COMPREPLY=() ;;
        share,1) COMPREPLY=($(compgen -d -- "$cur")) ;;
        *,0) COMPREPLY=($(compgen -W "$("$_vmc_bin" "${bus[@]}" list 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur")) ;;
        *) COMPREPLY=() ;;
        esac
}

complete -F _vmc vmc
