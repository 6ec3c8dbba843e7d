#!/usr/bin/env node
// The `kairos` command: the compiled CLI (`dist/`, built by `npm install` in the workspace and
// shipped in the package). `npm run kairos` in the workspace runs the sources instead.
import '../dist/cli/main.js';
