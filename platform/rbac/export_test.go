package rbac

// OwnerCacheLen reports how many answers a resolver from CacheOwners holds.
func OwnerCacheLen(r OwnerResolver) int { return r.(*ownerCache).len() }
