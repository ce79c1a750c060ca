// Package store is OpenTaco's domain package: the types (Unit, Version,
// Lock), the one error type (*Error with a Code), unit-ID rules, and the
// bbolt implementation that keeps them.
//
// Every public method of *DB is exactly one bbolt transaction, so a lock
// check and the write it guards commit together or not at all. State bytes
// are stored exactly as given (content-addressed, reference-counted blobs)
// and come back byte-identical. Every successful write creates a version,
// the first one included; retention never prunes the current version.
//
// Caveats: state bytes are held in memory once per write (bbolt needs the
// whole value); the size cap is enforced by the callers (httpapi).
package store
