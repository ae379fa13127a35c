#!/bin/sh
# Checks the habits CI keeps (docs/design.md §2), without building anything:
#   layers  the folders of src/ include each other as a DAG (no folder includes one that
#           includes it back, directly or through others); prints the order found
#   budget  no source file is over 1,000 lines
#   format  every C++ file is as clang-format (.clang-format) would write it
# Exits non-zero naming what failed.
set -eu
cd "$(dirname "$0")/.."
status=0

# layers: an edge "A B" for each include of B/... by a file under src/A (A != B).
edges=$(grep -rHoE '^[[:space:]]*#include "[a-z_]+/' src | sed -E 's|^src/([a-z_]+)/[^:]*:[[:space:]]*#include "([a-z_]+)/$|\1 \2|' |
        awk -v dirs="$(ls -d src/*/ | sed 's|src/||; s|/||' | tr '\n' ' ')" '
          BEGIN { n = split(dirs, d, " "); for (i = 1; i <= n; i++) is_dir[d[i]] = 1 }
          $1 != $2 && is_dir[$2] { print $2, $1 }' | sort -u)
if order=$(printf '%s\n' "$edges" | tsort 2>/tmp/kiln_tsort.$$); then
  echo "layers: src/ folders, lowest first: $(printf '%s\n' "$order" | tr '\n' ' ')"
else
  echo "layers: the folders of src/ include each other in a cycle:" >&2
  cat /tmp/kiln_tsort.$$ >&2
  status=1
fi
rm -f /tmp/kiln_tsort.$$

sources=$(git ls-files '*.cc' '*.h' '*.cu' '*.cuh')
big=$(echo "$sources" | xargs wc -l | awk '$2 != "total" && $1 > 1000 {print "  " $2 " (" $1 " lines)"}')
if [ -n "$big" ]; then
  echo "budget: files over 1,000 lines (split them by stage or op family):" >&2
  echo "$big" >&2
  status=1
else
  echo "budget: every source file is within 1,000 lines"
fi

format=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$format" ]; then
  echo "format: clang-format is not installed (scripts/deps.sh installs it)" >&2
  status=1
elif ! echo "$sources" | xargs "$format" --dry-run -Werror 2>/tmp/kiln_format.$$; then
  echo "format: files differ from clang-format's output (run: git ls-files '*.cc' '*.h' '*.cu' '*.cuh' | xargs $format -i):" >&2
  grep -oE '^[^:]+:[0-9]+' /tmp/kiln_format.$$ | cut -d: -f1 | sort -u | sed 's/^/  /' >&2
  status=1
else
  echo "format: every C++ file is formatted"
fi
rm -f /tmp/kiln_format.$$
exit $status
