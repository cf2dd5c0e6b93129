package koji

import (
	"context"
	"errors"
	"fmt"
)

// User is a Koji account as getUser reports it.
type User struct {
	ID            int
	Name          string
	Status        int // 0 NORMAL, 1 BLOCKED
	UserType      int // 0 NORMAL, 1 HOST, 2 GROUP
	KrbPrincipals []string
}

// GetUser looks a user up by name or Kerberos principal: listTasks filters
// on owner ids, not names. Answers are cached (accounts do not change
// ids); an unknown name is ErrNotFound and is not cached.
func (c *Client) GetUser(ctx context.Context, name string) (User, error) {
	if name == "" {
		return User{}, errors.New("koji: GetUser: empty name")
	}
	key := "user\x00" + name
	if c.cache != nil {
		if v, ok := c.cache.Get(key); ok {
			c.cacheHits.Add(1)
			return v.(User), nil
		}
	}
	v, err := c.shared(ctx, key, func(ctx context.Context) (any, error) {
		v, err := c.Call(ctx, "getUser", name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, fmt.Errorf("%w: user %q", ErrNotFound, name)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("koji: getUser answered %s", describe(v))
		}
		u := User{
			ID:       asInt(m["id"]),
			Name:     asString(m["name"]),
			Status:   asInt(m["status"]),
			UserType: asInt(m["usertype"]),
		}
		if ps, ok := m["krb_principals"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok {
					u.KrbPrincipals = append(u.KrbPrincipals, s)
				}
			}
		}
		if c.cache != nil {
			c.cache.SetDefault(key, u)
		}
		return u, nil
	})
	if err != nil {
		return User{}, err
	}
	return v.(User), nil
}
