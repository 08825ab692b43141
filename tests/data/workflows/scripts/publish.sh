# Run by full.yaml's 'publish' task, in this directory.
echo "$TARGET $PLAIT_INPUT_APPROVE $(basename "$PWD")"
