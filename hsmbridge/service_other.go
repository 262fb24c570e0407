//go:build !windows

package main

import "context"

// platformConfigPath is where hsmbridge looks for its config by default.
const platformConfigPath = "/etc/hsmbridge/hsmbridge.yaml"

// runService reports that there is no service manager to hand over to:
// under systemd hsmbridge runs as a plain foreground process.
func runService(string, func(context.Context) error) (bool, error) { return false, nil }
