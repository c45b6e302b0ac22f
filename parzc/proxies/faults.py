"""The fault a proxy raises when its value is undefined (the message becomes its NaN reason)."""


class ProxyFault(ArithmeticError):
    """A numerical fault that leaves a proxy undefined; the message becomes its NaN reason."""
