// Package e2etest is the shared harness of the end-to-end tests under e2e/:
// finding terraform, tofu and the OpenID provider of .ci/tools.sh, running
// a tool in a sandbox with a clean environment and a timeout, starting the
// real server wiring in-process on 127.0.0.1:0 (plain or over
// httpapi.SelfSignedTLS), and raw HTTP and HCL helpers.
//
// It is test support only: import it from _test.go files, never from
// product code. (Its files are plain .go files because test files of one
// package cannot be imported by another; TestOnlyTestsImport enforces the
// rule.) It imports package testing and fails or skips the calling test
// rather than returning errors.
//
// Programs are found through OPENTACO_TERRAFORM (else terraform on PATH),
// OPENTACO_TOFU and OPENTACO_OIDC_SERVER (else the cache that .ci/tools.sh
// fills, $HOME/.cache/opentaco-test). A missing one fails the test when CI
// is set and skips it otherwise.
//
// Every tool run gets its own HOME and, unless the sandbox says otherwise,
// its own CLI config file and TF_DATA_DIR, plus CHECKPOINT_DISABLE=1,
// TF_IN_AUTOMATION=1 and TF_INPUT=0, and nothing else from the TF_*
// environment of the caller. See SandboxConfig for what a package may
// choose.
package e2etest
