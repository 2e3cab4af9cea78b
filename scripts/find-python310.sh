#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (nnabla ships wheels up to 3.10).
set -u
for cand in python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10 \
            "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /root/.pyenv/versions/3.10*/bin/python3.10; do
  if [ -n "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    command -v "$cand" 2>/dev/null || echo "$cand"
    exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10' | tail -n 1)
  if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python3.10"; exit 0; fi
fi
echo "no Python 3.10 found: install it (nnabla has no wheels for newer Pythons)" >&2
exit 1
