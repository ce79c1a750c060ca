package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentaco/opentaco/store"
)

// benchState builds a state document of about n bytes.
func benchState(n int) []byte {
	return []byte(`{"version":4,"serial":1,"lineage":"bench","resources":[{"pad":"` + strings.Repeat("x", n) + `"}]}`)
}

func benchDo(b *testing.B, client *http.Client, method, url string, body []byte) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}

// BenchmarkUpload measures state uploads through /v1 (MB/s).
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{1 << 20, 50 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			base, db := badInputServer(b, 0)
			db.CreateUnit("bench/up")
			state := benchState(size)
			b.SetBytes(int64(len(state)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Vary the serial so every upload is a new blob.
				s := bytes.Replace(state, []byte(`"serial":1`), []byte(fmt.Sprintf(`"serial":%d`, 1000000+i)), 1)
				benchDo(b, http.DefaultClient, "POST", base+"/v1/units/bench__up/upload", s)
			}
		})
	}
}

// BenchmarkDownload measures state downloads through /v1 (MB/s).
func BenchmarkDownload(b *testing.B) {
	for _, size := range []int{1 << 20, 50 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			base, db := badInputServer(b, 0)
			state := benchState(size)
			if _, err := db.WriteState("bench/down", state, store.WriteOptions{Create: true}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(state)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				benchDo(b, http.DefaultClient, "GET", base+"/v1/units/bench__down/download", nil)
			}
		})
	}
}

// BenchmarkLockUnlock measures lock+unlock cycles through the http
// backend from 1 and from 16 concurrent clients, each on its own unit.
func BenchmarkLockUnlock(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			base, _ := badInputServer(b, 0)
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			client := &http.Client{Transport: tr}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					url := fmt.Sprintf("%s/v1/backend/bench/c%d", base, c)
					lock := []byte(fmt.Sprintf(`{"ID":"L%d","Who":"bench"}`, c))
					for i := c; i < b.N; i += clients {
						benchDo(b, client, "LOCK", url, lock)
						benchDo(b, client, "UNLOCK", url, lock)
					}
				}(c)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
		})
	}
}

// BenchmarkListPrefix measures GET /v1/units?prefix= over 10,000 units
// (1,000 of which match), reporting p50 and p99 latency.
func BenchmarkListPrefix(b *testing.B) {
	base, db := badInputServer(b, 0)
	for i := 0; i < 10000; i++ {
		if _, err := db.CreateUnit(fmt.Sprintf("team%d/app%05d", i%10, i)); err != nil {
			b.Fatal(err)
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		benchDo(b, http.DefaultClient, "GET", base+"/v1/units?prefix=team3/", nil)
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
