module github.com/opentaco/opentaco

go 1.26

require (
	github.com/alecthomas/kong v1.17.0
	github.com/julienschmidt/httprouter v1.3.0
	github.com/rs/zerolog v1.35.1
	go.etcd.io/bbolt v1.4.3
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
