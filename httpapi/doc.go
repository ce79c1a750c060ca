// Package httpapi serves OpenTaco's management API (/v1) and the Terraform
// http backend (/v1/backend/...) on httprouter, and holds the Go client
// (Client) that the CLI and the tests use.
//
// Handlers have the shape func(w, r, params) error; one adapter turns a
// returned error into a response, with the status taken from the one table
// in error.go. Routing happens on the escaped path, so "team%2Fapp" stays
// one segment and is decoded by store.DecodeID.
package httpapi
