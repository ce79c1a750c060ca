package crash

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func runBinary(args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// bigState builds a state document of about n bytes.
func bigState(n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 256)
	b.WriteString(`{"version":4,"terraform_version":"1.11.4","serial":1,"lineage":"big","outputs":{},"resources":[{"pad":"`)
	b.WriteString(strings.Repeat("x", n))
	b.WriteString(`"}]}`)
	return b.Bytes()
}

// TestPeakRSS_Upload50MB: storing and reading back a 50 MB state keeps the
// server's peak RSS under 4× the state size plus 64 MiB.
func TestPeakRSS_Upload50MB(t *testing.T) {
	const size = 50 << 20
	c := startChild(t, t.TempDir())
	state := bigState(size)
	before, err := vmHWM(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/backend/big/a", "/v1/backend/big/b"} {
		if st, b, err := request("POST", c.base+path, state); err != nil || st != 200 {
			t.Fatalf("upload: %d %s %v", st, b, err)
		}
	}
	if st, b, err := request("GET", c.base+"/v1/backend/big/a", nil); err != nil || st != 200 || !bytes.Equal(b, state) {
		t.Fatalf("download: %d %v (equal=%v)", st, err, bytes.Equal(b, state))
	}
	peak, err := vmHWM(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(4*size + 64<<20)
	t.Logf("peak RSS %.1f MiB (before uploads %.1f MiB), limit %.1f MiB", mib(peak), mib(before), mib(limit))
	if peak > limit {
		t.Fatalf("peak RSS %.1f MiB exceeds %.1f MiB", mib(peak), mib(limit))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// BenchmarkPeakRSS_Upload50MB reports the peak RSS of a fresh server
// after one 50 MB upload, as peak-MiB.
func BenchmarkPeakRSS_Upload50MB(b *testing.B) {
	state := bigState(50 << 20)
	for i := 0; i < b.N; i++ {
		c := startChild(b, b.TempDir())
		if st, body, err := request("POST", c.base+fmt.Sprintf("/v1/backend/big/%d", i), state); err != nil || st != 200 {
			b.Fatalf("upload: %d %s %v", st, body, err)
		}
		peak, err := vmHWM(c.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(mib(peak), "peak-MiB")
		_ = c.cmd.Process.Kill()
	}
}
