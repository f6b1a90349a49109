module evidence-ledger/ops/interop/gocheck

go 1.19

require golang.org/x/mod v0.7.0

// Build offline against the Debian package golang-golang-x-mod-dev (0.7.0), never the network:
// GOFLAGS=-mod=mod GOPROXY=off go build .
replace golang.org/x/mod => /usr/share/gocode/src/golang.org/x/mod
