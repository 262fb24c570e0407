//go:build windows

package main

import (
	"context"

	"golang.org/x/sys/windows/svc"
)

// platformConfigPath is where the Windows service looks for its config.
const platformConfigPath = `C:\ProgramData\hsmbridge\hsmbridge.yaml`

// runService runs start under the Windows service manager when the
// process was started by it; handled is false in a console.
func runService(name string, start func(context.Context) error) (handled bool, err error) {
	is, err := svc.IsWindowsService()
	if err != nil || !is {
		return false, err
	}
	return true, svc.Run(name, &service{start: start})
}

// service adapts the bridge to the service control manager.
type service struct {
	start func(context.Context) error
}

// Execute runs the bridge until the manager asks it to stop.
func (s *service) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.start(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				if err := <-done; err != nil {
					return true, 1
				}
				return false, 0
			}
		case err := <-done:
			if err != nil {
				return true, 1
			}
			return false, 0
		}
	}
}
