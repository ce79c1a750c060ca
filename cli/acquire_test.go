package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opentaco/opentaco/store"
)

func TestCLI_UnitAcquire(t *testing.T) {
	e := newEnv(t)
	e.ok("", "unit", "create", "acq/app")
	if _, err := e.client.Lock(context.Background(), "acq/app", store.Lock{ID: "HELD", Who: "ci"}); err != nil {
		t.Fatal(err)
	}

	t.Run("ErrLockedAtOnce", func(t *testing.T) {
		start := time.Now()
		if msg := e.fail(6, "", "unit", "acquire", "acq/app", "--timeout", "0"); !strings.Contains(msg, "HELD") {
			t.Fatalf("acquire --timeout 0 does not name the holder: %s", msg)
		} else if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("acquire --timeout 0 waited %s", d)
		}
	})
	t.Run("WaitsForRelease", func(t *testing.T) {
		go func() {
			time.Sleep(1500 * time.Millisecond)
			_, _ = e.client.Unlock(context.Background(), "acq/app", "HELD", false)
		}()
		r := e.run("", "unit", "acquire", "acq/app", "--id", "MINE", "--timeout", "30s")
		if r.code != 0 || !strings.Contains(r.stderr, "Waiting up to 30s") || !strings.Contains(r.stderr, "HELD") {
			t.Fatalf("acquire: %+v", r)
		}
		l, err := e.client.GetLock(context.Background(), "acq/app")
		if err != nil || l.ID != "MINE" {
			t.Fatalf("lock after acquire: %+v %v", l, err)
		}
		e.ok("", "unit", "release", "acq/app") // uses the remembered lock
		if _, err := e.client.GetLock(context.Background(), "acq/app"); store.ErrorCode(err) != store.ENOTFOUND {
			t.Fatalf("still locked after release: %v", err)
		}
	})
}
