"""Domain knowledge as plain Python: no I/O, no ORM, time passed in."""
