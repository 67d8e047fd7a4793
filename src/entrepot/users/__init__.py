"""People as principals: users, their passwords, login and organisation membership."""
