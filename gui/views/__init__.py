"""The views, in display order. Each module holds one view; see base.View for the interface."""
ALL_VIEWS: list = []  # filled as views are written: [WaterfallView, ProfileView, ...]
