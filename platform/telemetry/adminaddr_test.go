package telemetry

// boundAdminAddr returns the address the admin server is bound to (the
// tests listen on port 0), or "" before StartAdmin.
func (t *Telemetry) boundAdminAddr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.adminAddr
}
