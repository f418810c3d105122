//go:build tools

// Package dex pins the command the lab builds; see lab/build.py.
package dex

import _ "github.com/dexidp/dex/cmd/dex"
