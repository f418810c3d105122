// Wrapper module that builds Traefik from the Go module proxy. Traefik's own go.mod replaces
// github.com/abbot/go-http-auth and github.com/gorilla/mux with Containous forks and excludes a
// broken tencentcloud version; replaces and excludes only apply in the main module, so this one
// repeats them. v3.6.12 is the newest v3 whose dependencies the proxy serves (v3.7.x pins a fork
// version and a nested module the proxy does not have).
module tirosh.lab/traefik

go 1.26.5

require github.com/traefik/traefik/v3 v3.6.12

replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
	github.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
