"""One module per resource; each translates service results and errors into HTTP."""
