# Stage: analysis (placeholder until its issue lands).
ANALYSIS_TARGETS = []
