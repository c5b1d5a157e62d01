"""API conventions every controller uses: error shape, field errors, cursor pagination."""
