//go:build tools

// Package traefik pins the command the lab builds; see lab/build.py.
package traefik

import _ "github.com/traefik/traefik/v3/cmd/traefik"
