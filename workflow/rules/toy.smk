# Stage: toy (placeholder until its issue lands).
TOY_TARGETS = []
