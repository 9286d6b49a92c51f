# Stage: presence (placeholder until its issue lands).
PRESENCE_TARGETS = []
