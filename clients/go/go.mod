// The Sonicwire Go client. The versions are those of Debian 12's packages (genproto: the one
// grpc 1.33.3 requires), which this module is built and tested against offline in GOPATH mode
// (scripts/go). In module mode with a module proxy, `go mod tidy` resolves them; go.sum is not
// committed because nothing here can download the modules to hash them.
module sonicwire.dev/go

go 1.19

require (
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
