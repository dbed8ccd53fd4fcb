"""The working-day calendar: Chinese public holidays and 调休 make-up days, the official calendar file, and
the yearly notice that the calendar needs updating."""
