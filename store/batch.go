package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// committer groups concurrent write operations into one bbolt transaction
// (one fsync) without delaying a lone caller: the first caller commits at
// once; callers that arrive while a commit is running wait and are
// committed together by the next one. bbolt's own Batch waits up to
// MaxBatchDelay before committing, which would slow a single client.
type committer struct {
	mu      sync.Mutex
	running bool
	pending []*batchCall
}

type batchCall struct {
	fn   func(tx *bolt.Tx, now time.Time) error
	err  error
	done chan struct{}
}

// batch runs fn in a write transaction shared with concurrent callers.
// fn may run more than once, so it must not keep state outside tx, and it
// must not write before it returns an *Error: domain errors do not roll
// back the shared transaction. Any other error rolls it back, and every
// member is then retried in a transaction of its own.
func (db *DB) batch(fn func(tx *bolt.Tx, now time.Time) error) error {
	c := db.commits
	call := &batchCall{fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	if c.running {
		c.mu.Unlock()
		<-call.done
		return call.err
	}
	c.running = true
	for len(c.pending) > 0 {
		group := c.pending
		c.pending = nil
		c.mu.Unlock()
		db.commitGroup(group)
		c.mu.Lock()
	}
	c.running = false
	c.mu.Unlock()
	<-call.done
	return call.err
}

func (db *DB) commitGroup(group []*batchCall) {
	defer func() { // always release the waiters, even after a panic below
		for _, call := range group {
			close(call.done)
		}
	}()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		now := db.Now()
		for _, call := range group {
			call.err = unpanic(call.fn, tx, now)
			var e *Error
			if call.err != nil && !errors.As(call.err, &e) {
				return call.err
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		for _, call := range group {
			call.err = db.update(func(tx *bolt.Tx, now time.Time) error { return unpanic(call.fn, tx, now) })
		}
	} else if err != nil {
		group[0].err = err
	}
}

// unpanic runs fn, turning a panic into an error: a panicking member must
// not leave the committer running forever with its waiters blocked.
func unpanic(fn func(tx *bolt.Tx, now time.Time) error, tx *bolt.Tx, now time.Time) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in a batched write: %v", v)
		}
	}()
	return fn(tx, now)
}
