package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// lockFile remembers the lock IDs taken with `unit lock`, so that `push`,
// `restore` and `unlock` find them without --lock-id. It lives at
// <config dir>/locks.json (file 0600, dir 0700) and maps server URL → unit
// ID → lock ID. Writes replace the file atomically; two CLIs updating it
// at the same moment may lose one entry, which only means passing
// --lock-id by hand.
type lockFile struct {
	path string
}

type lockFileData struct {
	Locks map[string]map[string]string `json:"locks"`
}

// lockFile returns the lock file of the configured config dir.
func (g *Globals) lockFile() (*lockFile, error) {
	dir := g.ConfigDir
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("find the config dir (set OPENTACO_CONFIG_DIR or --config-dir): %w", err)
		}
		dir = filepath.Join(base, "opentaco")
	}
	return &lockFile{path: filepath.Join(dir, "locks.json")}, nil
}

func serverKey(server string) string { return strings.TrimRight(server, "/") }

// get returns the remembered lock ID of unit id on server, or "".
func (f *lockFile) get(server, id string) (string, error) {
	d, err := f.read()
	if err != nil {
		return "", err
	}
	return d.Locks[serverKey(server)][id], nil
}

// set remembers lockID for unit id on server; an empty lockID forgets.
func (f *lockFile) set(server, id, lockID string) error {
	d, err := f.read()
	if err != nil {
		return err
	}
	key := serverKey(server)
	switch {
	case lockID != "":
		if d.Locks[key] == nil {
			d.Locks[key] = map[string]string{}
		}
		d.Locks[key][id] = lockID
	case d.Locks[key][id] == "":
		return nil // nothing to forget; leave the file alone
	default:
		delete(d.Locks[key], id)
		if len(d.Locks[key]) == 0 {
			delete(d.Locks, key)
		}
	}
	return writeJSONFile(f.path, d)
}

func (f *lockFile) read() (*lockFileData, error) {
	d := &lockFileData{}
	if err := readJSONFile(f.path, d, "delete it to forget remembered locks"); err != nil {
		return nil, err
	}
	if d.Locks == nil {
		d.Locks = map[string]map[string]string{}
	}
	return d, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path, so readers see the old or the new content,
// never a part. An existing file keeps its mode; a new one gets perm.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	} else if err := tmp.Chmod(perm); err != nil {
		return err
	} else if err := tmp.Sync(); err != nil {
		return err
	} else if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readJSONFile decodes the JSON file at path into v; a missing file leaves
// v as it is. A corrupt file's error says how to recover (fix).
func readJSONFile(path string, v any, fix string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt (%s): %w", path, fix, err)
	}
	return nil
}

// writeJSONFile writes v as indented JSON, atomically, with mode 0600 in a
// directory of mode 0700 (an existing file's mode is tightened first).
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	} else if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}
