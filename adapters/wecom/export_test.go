package wecom

import "github.com/scrmgw/scrmgw/adapters"

// PublicAddr is the media fetch's address check, for tests.
var PublicAddr = adapters.PublicAddr
