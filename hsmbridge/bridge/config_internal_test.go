package bridge

import "testing"

// TestMachineStateDir checks where the machine's state directory is on
// each system, without touching it.
func TestMachineStateDir(t *testing.T) {
	for _, tc := range []struct {
		name   string
		goos   string
		env    map[string]string
		euid   int
		exists bool
		want   string
	}{
		{"ok Windows", "windows", map[string]string{"ProgramData": `D:\ProgramData`}, 1000, false, `D:\ProgramData\hsmbridge\state`},
		{"ok Windows without ProgramData", "windows", nil, 1000, false, `C:\ProgramData\hsmbridge\state`},
		{"ok Linux as root", "linux", map[string]string{"HOME": "/root", "XDG_STATE_HOME": "/root/st"}, 0, false, "/var/lib/hsmbridge"},
		{"ok Linux service user with the installed folder", "linux", map[string]string{"HOME": "/home/ops"}, 998, true, "/var/lib/hsmbridge"},
		{"ok Linux user, XDG state home", "linux", map[string]string{"HOME": "/home/ops", "XDG_STATE_HOME": "/home/ops/.st"}, 1000, false, "/home/ops/.st/hsmbridge"},
		{"ok Linux user, relative XDG_STATE_HOME ignored", "linux", map[string]string{"HOME": "/home/ops", "XDG_STATE_HOME": "st"}, 1000, false, "/home/ops/.local/state/hsmbridge"},
		{"ok macOS user", "darwin", map[string]string{"HOME": "/Users/ops"}, 501, false, "/Users/ops/.local/state/hsmbridge"},
		{"fail no home", "linux", nil, 1000, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := machineStateDir(tc.goos, func(k string) string { return tc.env[k] }, tc.euid, func(p string) bool {
				return tc.exists && p == "/var/lib/hsmbridge"
			})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
