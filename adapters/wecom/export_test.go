package wecom

// PublicAddr is publicAddr, for tests.
var PublicAddr = publicAddr
