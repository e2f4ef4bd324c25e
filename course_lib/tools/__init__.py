"""Commands for the people who build and check the course: `python -m course_lib.tools.NAME`. Lessons never import
these; they import the library one level up."""
