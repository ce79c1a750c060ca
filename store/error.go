package store

import (
	"errors"
	"fmt"
)

// Error codes. Every error that crosses a package boundary carries one of
// these; httpapi maps them to HTTP statuses in exactly one table.
const (
	EINVALID      = "invalid"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	ELOCKED       = "locked"
	ETOOLARGE     = "too_large"
	EINTERNAL     = "internal"
)

// Error is the one error type of OpenTaco. Lock is set for ELOCKED (and
// for conflicts caused by a lock) so callers can show who holds it; Cycle
// for a dependency refused because it would close a cycle, so callers can
// check the caller may see every unit the message names.
type Error struct {
	Code    string
	Message string
	Lock    *Lock
	Cycle   []string // units of the cycle a refused dependency would close
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err; unknown errors are EINTERNAL, nil is "".
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of err; unknown errors get a
// generic message so that internal details never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorLock returns the lock carried by err, if any.
func ErrorLock(err error) *Lock {
	var e *Error
	if errors.As(err, &e) {
		return e.Lock
	}
	return nil
}

func lockedError(l *Lock) *Error {
	return &Error{Code: ELOCKED, Message: fmt.Sprintf("unit is locked by %q (lock %s)", l.Who, l.ID), Lock: l}
}
