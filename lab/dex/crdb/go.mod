// The 2018 API of github.com/cockroachdb/cockroach-go/crdb that Dex v2.13.0 calls; see ../go.mod.
module github.com/cockroachdb/cockroach-go

go 1.22
