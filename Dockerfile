# The newsletter app: one image for the scheduler (`newsletter schedule run`) and the web service (`newsletter serve`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# Not editable: the templates are package data, so the installed package needs nothing from /app.
# tzdata: slim images may lack /usr/share/zoneinfo, and the schedule names its zone (Europe/London).
RUN pip install . tzdata \
    && useradd --create-home --uid 1000 newsletter
USER newsletter

# The newsletter folder (newsletter.yaml, content/, subscribers/) is mounted here.
WORKDIR /newsletter
CMD ["python", "/app/scheduler.py", "--dir", "/newsletter"]
