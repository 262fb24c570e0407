package devstack

import (
	"context"
	"time"

	"github.com/ceb179/ceb179/internal/dev/localalarm"
	"github.com/ceb179/ceb179/internal/settle"
)

// The settler's alarms of template.yaml that the local stack evaluates
// after each run, as CloudWatch would in AWS.
const (
	// AlarmMissing watches the Missing pass (declared orders without a
	// payment record after the grace).
	AlarmMissing = "SettleMissingAlarm"
	// AlarmStuck watches the requests stuck past their deadline.
	AlarmStuck = "SettleStuckAlarm"
)

// loadAlarms reads the settler's alarms from the provisioned template.
func (s *Stack) loadAlarms() error {
	s.alarms = map[string]*localalarm.Alarm{}
	for _, id := range []string{AlarmMissing, AlarmStuck} {
		spec, err := s.aws.Template.Alarm(id)
		if err != nil {
			return err
		}
		s.alarms[id] = localalarm.New(spec)
	}
	return nil
}

// Settle runs the settler once, as the schedule does, and evaluates the
// settler's alarms with the run's figures; the journey shows each alarm
// that fires or clears.
func (s *Stack) Settle(ctx context.Context) (settle.Report, error) {
	rep, err := s.Settler.Run(ctx)
	s.observe(AlarmStuck, float64(rep.Stuck), "%d requests not final past their deadline")
	if rep.Missing != nil {
		s.observe(AlarmMissing, float64(rep.Missing.Missing), "%d declared orders without a payment record after "+rep.Missing.Grace.String())
	}
	return rep, err
}

// observe adds a datapoint to alarm id and tells the journey of a change.
func (s *Stack) observe(id string, v float64, what string) {
	a := s.alarms[id]
	if a == nil {
		return
	}
	prev, _ := a.State()
	state, changed := a.Observe(v)
	switch {
	case changed && state == localalarm.StateAlarm:
		s.journey.printf("⚠ ALARM %s: "+what, id, int(v))
	case changed && prev == localalarm.StateAlarm:
		s.journey.printf("✓ OK %s: "+what, id, int(v))
	}
}

// Alarm returns the state of one of the settler's alarms (AlarmMissing,
// AlarmStuck) and the last value it saw; "" when the stack does not
// evaluate it.
func (s *Stack) Alarm(id string) (state string, value float64) {
	if a := s.alarms[id]; a != nil {
		return a.State()
	}
	return "", 0
}

// settleLoop runs Settle every interval until ctx ends.
func (s *Stack) settleLoop(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.Settle(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("settle run failed", "error", err.Error())
		}
	}
}
