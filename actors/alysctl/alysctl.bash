# bash completion for alysctl (installed by meson to
# share/bash-completion/completions/alysctl).
_alysctl()
{
    local cur prev cmd i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    if [[ $prev == --config ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
    fi
    cmd=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --config) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    local words
    case $cmd in
        '') words="status monitor import export peers sync checkpoint cert tx key --config --help --version" ;;
        status|peers) words="--json --help" ;;
        monitor) words="--metrics --fields --count --help" ;;
        import) words="--batch --window --help" ;;
        export) words="--from --to --help" ;;
        sync) words="status head can-produce pause resume start --from --target --json --help" ;;
        checkpoint) words="list create recover --json --help" ;;
        cert) words="new --help" ;;
        tx) words="send submit status --to --amount --fee --nonce --key-file --json --help" ;;
        key) words="show new --endpoint --help" ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    if [[ $cmd == import || $cmd == export || $cmd == cert || $cmd == key ]] && [[ $cur != -* ]]; then
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
    fi
}
complete -F _alysctl alysctl
