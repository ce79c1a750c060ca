// Package cli holds the kong command tree of the opentaco binary: the
// server (`serve`) and the client commands, which talk to a server through
// httpapi.Client. Run is the one entry point; tests call it in-process.
// Exit codes depend on the error code of the failure (see exitCode).
package cli
