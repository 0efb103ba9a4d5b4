"""What the tests share: environments, servers, helpers. Test files import from here, never
from one another."""
