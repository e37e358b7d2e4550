# Finding lbaas processes, for scripts/quickstart and scripts/stop (sourced, not run).
#
# Everything here reads /proc; nothing signals a process. A process is an
# `lbaas serve` if its command line runs lbaas (`.venv/bin/lbaas serve`,
# `python -m lbaas serve`); it uses a state directory if it holds a file in it
# open (the SQLite database, its log, a lock) or names it with --state-dir.
# Processes of other users are invisible to a non-root caller.

alive() {  # PID: a live process, not a zombie
  local stat  # (read, not $(<...): with set -e, bash exits when that file is missing)
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  [[ ${stat##*) } != Z* ]]
}

argv_of() {  # PID: its command line, one argument per line
  local -a argv
  { mapfile -d '' -t argv <"/proc/$1/cmdline"; } 2>/dev/null || return 1
  ((${#argv[@]})) && printf '%s\n' "${argv[@]}"
}

is_lbaas_serve() {  # PID
  local cmd
  cmd=$(argv_of "$1" | tr '\n' ' ') || return 1
  [[ " $cmd" =~ [/\ ]lbaas\ serve( |$) ]]
}

real_path() {  # PID PATH: PATH as that process sees it (relative to its cwd), absolute,
  # its directories' links resolved but not a link it ends in (.venv/bin/python is one)
  local path=$2
  [[ $path == /* ]] || path="$(readlink "/proc/$1/cwd" 2>/dev/null)/$path"
  path=$(realpath -m -s -- "$path")
  echo "$(readlink -m -- "$(dirname -- "$path")")/$(basename -- "$path")"
}

uses_dir() {  # PID DIR (absolute, resolved): the process uses state directory DIR
  local pid=$1 dir=$2 arg next=0
  if [[ -n $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -lname "$dir/*" -print -quit \
             2>/dev/null || true) ]]; then
    return 0
  fi
  while IFS= read -r arg; do
    if ((next)); then
      [[ $(real_path "$pid" "$arg") == "$dir" ]] && return 0
      next=0
    elif [[ $arg == --state-dir ]]; then
      next=1
    elif [[ $arg == --state-dir=* ]]; then
      [[ $(real_path "$pid" "${arg#--state-dir=}") == "$dir" ]] && return 0
    fi
  done < <(argv_of "$pid")
  return 1
}

serve_pids() {  # DIR: PIDs of the live `lbaas serve` processes using state directory DIR
  local proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    is_lbaas_serve "$pid" && alive "$pid" && uses_dir "$pid" "$1" && echo "$pid"
  done
  return 0
}

listener_pids() {  # PORT: PIDs of the processes listening on TCP port PORT (any address)
  local port inodes inode found=""
  port=$(printf ':%04X' "$1")
  inodes=$(awk -v p="$port" '$4 == "0A" && substr($2, length($2) - 4) == p {print $10}' \
             /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
  for inode in $inodes; do
    # find fails on the processes that end while it looks: what it found still counts.
    found+=$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname "socket:\[$inode\]" \
               2>/dev/null || true)$'\n'
  done
  [[ -n $found ]] && cut -d/ -f3 <<<"$found" | grep . | sort -un
  return 0
}

venv_of() {  # PID: the virtualenv its Python or script lives in (empty if none)
  local arg path
  while IFS= read -r arg; do
    path=$(real_path "$1" "$arg")
    if [[ $path == */bin/* && -e ${path%%/bin/*}/pyvenv.cfg ]]; then
      echo "${path%%/bin/*}"
      return 0
    fi
  done < <(argv_of "$1" | sed -n 1,2p)
  return 0
}
